print("svakit")
